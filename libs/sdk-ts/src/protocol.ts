// The wire format of the Bachata client protocol v1 (docs/protocol.md):
// frame shapes, transport types, error and close codes, signing.

import { hmacSha256Hex } from "./host.js";

/** Transport message types (integers on the wire). */
export const Transport = {
  /** ← the server has durably queued your message (data: its id). */
  Received: 100,
  /** → this device got a message (data: its id). */
  Ack: 200,
  /** ← the recipient got your message (data: its id). */
  Delivered: 300,
  /** ← the connection is ready (data: the session key). */
  Ready: 1000,
  Ping: 1001,
  Pong: 1002,
} as const;

/** ErrorCode names the codes of the protocol's error table. */
export const ErrorCode = {
  InvalidJSON: 4000,
  NotObject: 4001,
  InvalidType: 4002,
  TypeNotAllowed: 4003,
  MissingID: 4004,
  InvalidID: 4005,
  InvalidDest: 4006,
  InvalidField: 4007,
  DuplicateKey: 4008,
  BinaryFrame: 4009,
  InvalidUTF8: 4010,
  TooDeep: 4011,
  FrameTooLarge: 4012,
  UnknownType: 4100,
  DestNotFound: 4101,
  NotMember: 4102,
  Forbidden: 4103,
  AppNoResponder: 4110,
  AppTimeout: 4111,
  InvalidApp: 4112,
  InvalidPresence: 4120,
  SignRequired: 4200,
  SignInvalid: 4201,
  InvalidHandshake: 4210,
  RateLimited: 4290,
  TooManySubscriptions: 4291,
  Internal: 5000,
  Unavailable: 5001,
  Timeout: 5002,
} as const;

/**
 * RETRYABLE_CODES are the codes whose Retry column in the protocol's table
 * says yes: resending the same id later may succeed and is safe.
 */
export const RETRYABLE_CODES: readonly number[] = [
  ErrorCode.AppNoResponder,
  ErrorCode.RateLimited,
  ErrorCode.Unavailable,
  ErrorCode.Timeout,
];

/**
 * DEFAULT_RETRY_CODES are the codes the outgoing queue resends by itself.
 * 4110 (no application backend) is retryable by the table but left to the
 * caller: a backend that is missing is seldom back within a backoff.
 */
export const DEFAULT_RETRY_CODES: readonly number[] = [ErrorCode.RateLimited, ErrorCode.Unavailable, ErrorCode.Timeout];

/** CloseCode names the close codes the gateway uses. */
export const CloseCode = {
  /** "replaced": a newer connection of the same device took over. */
  Normal: 1000,
  /** "idle timeout". */
  GoingAway: 1001,
  ProtocolError: 1002,
  /** No close frame: the connection dropped (never sent on the wire). */
  Abnormal: 1006,
  /** "rate limit" / "kicked" / "too many connections". */
  PolicyViolation: 1008,
  /** A frame over the size limit. */
  MessageTooBig: 1009,
  /** "session setup failed" / "session lost". */
  InternalError: 1011,
  /** "service restart". */
  ServiceRestart: 1012,
  /** "try again later". */
  TryAgainLater: 1013,
  /** "token expired". */
  TokenExpired: 4401,
} as const;

/** DataMessage is a data message as it travels (string `type`). */
export interface DataMessage {
  id?: string;
  type: string;
  time?: number;
  from?: string;
  dest?: string;
  data?: unknown;
  sign?: string;
}

/**
 * IncomingMessage is a data message delivered to this device: a direct or
 * group message, a copy of one of your own sent from another device
 * (`from` is you), or one from the system (`from` absent).
 */
export interface IncomingMessage {
  id: string;
  type: string;
  time?: number;
  from?: string;
  dest?: string;
  data?: unknown;
}

/** PresenceEvent is the data of a `presence` event. */
export interface PresenceEvent {
  /** The user's entity ID, like `@bob@localhost`. */
  user: string;
  status: "online" | "offline";
  /** Unix ms; absent for a user never seen. */
  lastSeen?: number;
}

/** TypingEvent is an incoming `typing` ephemeral message. */
export interface TypingEvent {
  from: string;
  dest: string;
  typing: boolean;
  /** The message as received, `data` included. */
  message: IncomingMessage;
}

/** ErrorReply is the content of a `<type>:error` reply. */
export interface ErrorReply {
  /** The id of the frame answered, when the server could read one. */
  id?: string;
  /** The type of the frame answered (`error` when it had no readable string type). */
  type: string;
  code: number;
  text: string;
  payload: Record<string, unknown>;
}

const errorSuffix = ":error";

/**
 * parseErrorReply reads an `:error` reply (or the bare `error` type),
 * or returns undefined for any other message.
 */
export function parseErrorReply(m: DataMessage): ErrorReply | undefined {
  let type: string;
  if (m.type === "error") type = "error";
  else if (m.type.endsWith(errorSuffix)) type = m.type.slice(0, -errorSuffix.length);
  else return undefined;
  const d = (typeof m.data === "object" && m.data !== null ? m.data : {}) as Record<string, unknown>;
  const reply: ErrorReply = {
    type,
    code: typeof d["errCode"] === "number" ? d["errCode"] : 0,
    text: typeof d["errText"] === "string" ? d["errText"] : "",
    payload: (typeof d["errPayload"] === "object" && d["errPayload"] !== null ? d["errPayload"] : {}) as Record<string, unknown>,
  };
  if (m.id !== undefined) reply.id = m.id;
  return reply;
}

/** dataCanonical is the canonical form v1 of a data message, the text its `sign` covers. */
export function dataCanonical(m: { id: string; type: string; dest?: string | undefined; data?: unknown }): string {
  const data = m.data === undefined ? "" : JSON.stringify(m.data);
  return `bachata-sign-v1\n${m.id}\n${m.type}\n${m.dest ?? ""}\n${data}`;
}

/** transportCanonical is the canonical form v1 of a transport message. */
export function transportCanonical(type: number, data: string): string {
  return `bachata-sign-v1\n${type}\n${data}`;
}

/** sign is the `sign` field for a canonical form under a session key. */
export function sign(sessionKey: string, canonical: string): Promise<string> {
  return hmacSha256Hex(sessionKey, canonical);
}
