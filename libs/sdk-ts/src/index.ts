// @bachata/client: a client for the Bachata chat protocol v1 (docs/protocol.md).

export {
  BachataClient,
  type BachataClientOptions,
  type BachataEvents,
  type ConnectionState,
  type DisconnectInfo,
  type ReadyInfo,
  type SendOptions,
  type SendResult,
  type StorageLike,
  type TokenSource,
} from "./client.js";
export { type BackoffOptions, DEFAULT_BACKOFF, backoffDelay } from "./backoff.js";
export { BachataClientError, BachataError, type ClientErrorReason } from "./errors.js";
export { type WebSocketConstructor, type WebSocketLike, newId } from "./host.js";
export {
  CloseCode,
  DEFAULT_RETRY_CODES,
  type DataMessage,
  ErrorCode,
  type ErrorReply,
  type IncomingMessage,
  type PresenceEvent,
  RETRYABLE_CODES,
  Transport,
  type TypingEvent,
  dataCanonical,
  sign,
  transportCanonical,
} from "./protocol.js";
