/**
 * History rooms as the client sees them: a room's stream position, the extra
 * envelope fields of its messages, and what `history()` resolves with.
 *
 * The server decides which rooms keep a history. Every message of such a room
 * carries `room` and `offset` in its envelope; offsets increase by one per
 * message of the room within an epoch (a string that changes when the server
 * lost the stream). See the protocol guide's "History and recovery".
 *
 * @module
 */

import type { AnyContract, ServerMessage } from "../protocol/contract.ts";

/** Where a client stands in a history room's stream. */
export interface StreamPosition {
  /** The stream's epoch: offsets from another epoch do not compare. */
  epoch: string;
  /**
   * The last offset the client delivered to the app in that epoch (after a fresh
   * subscribe: the stream's latest offset then; every later message has a greater one).
   */
  offset: number;
}

/** The envelope fields a message of a history room carries besides `type`, `data`, `timestamp`. */
export interface StreamFields {
  /** The history room the message was emitted to (absent for other messages). */
  room?: string;
  /** Its offset in the room's stream (absent for other messages). */
  offset?: number;
}

/** A message of a history room, as `history()` returns it: the envelope as first sent. */
export type HistoryMessage<C extends AnyContract = AnyContract> = ServerMessage<C> & {
  /** The history room. */
  room: string;
  /** The message's offset in the room's stream. */
  offset: number;
};

/** What {@linkcode HubClient.history} resolves with: the server's `history` reply. */
export interface HistoryResult<C extends AnyContract = AnyContract> {
  /** The room. */
  room: string;
  /** The stream's epoch (`undefined` if the room keeps no history: `messages` is then empty). */
  epoch: string | undefined;
  /** The stream's latest offset when the server read it (`undefined` without a history). */
  offset: number | undefined;
  /** The last messages, oldest first, each the envelope as first sent (with `room` and `offset`). */
  messages: HistoryMessage<C>[];
}
