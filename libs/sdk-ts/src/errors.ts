import type { ErrorReply } from "./protocol.js";

/**
 * BachataError is an `:error` reply from the server. `code` is from the
 * protocol's error table (switch on it); `text` is for humans.
 */
export class BachataError extends Error {
  override readonly name = "BachataError";
  /** The errCode. */
  readonly code: number;
  /** The errText. */
  readonly text: string;
  /** The errPayload, `{}` unless the code documents fields. */
  readonly payload: Record<string, unknown>;
  /** The id of the frame answered, when there was one. */
  readonly id: string | undefined;
  /** The type of the frame answered. */
  readonly type: string;

  constructor(reply: ErrorReply) {
    super(`bachata: ${reply.type} ${reply.id ?? ""} error ${reply.code}: ${reply.text}`);
    this.code = reply.code;
    this.text = reply.text;
    this.payload = reply.payload;
    this.id = reply.id;
    this.type = reply.type;
  }
}

/** ClientErrorReason says why the client itself failed an operation. */
export type ClientErrorReason =
  /** close() was called, or the client stopped for good. */
  | "closed"
  /** The frame would exceed the server's frame size limit (64 KiB by default). */
  | "frame_too_large"
  /** An ephemeral message could not be sent because no connection is open. */
  | "not_connected"
  /** The gateway refused the connection for good (HTTP 400, 401, 403) or closed it with 4401 and no new token could be had. */
  | "refused"
  /** The application's message handler threw; the message is not acked and comes again. */
  | "handler"
  /** A frame from the server could not be understood. */
  | "protocol"
  /** The storage option failed to load or save. */
  | "storage";

/** BachataClientError is an error raised by the client, not sent by the server. */
export class BachataClientError extends Error {
  override readonly name = "BachataClientError";
  readonly reason: ClientErrorReason;
  /** For "refused": the HTTP status of the refused upgrade, when known. */
  readonly status: number | undefined;
  /** For "refused": the close code, when the server closed the socket. */
  readonly closeCode: number | undefined;

  constructor(reason: ClientErrorReason, message: string, opts: { cause?: unknown; status?: number; closeCode?: number } = {}) {
    super(`bachata: ${message}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.reason = reason;
    this.status = opts.status;
    this.closeCode = opts.closeCode;
  }
}
