// Internal symbols and interfaces shared by the core's files. Never exported from mod.ts.

/** Symbol-keyed methods of Connection that only the hub calls. */
export const kDeliver: unique symbol = Symbol("hubbub.deliver");
export const kDrainClose: unique symbol = Symbol("hubbub.drainClose");
export const kCloseWith: unique symbol = Symbol("hubbub.closeWith");
export const kAbandon: unique symbol = Symbol("hubbub.abandon");
export const kCompact: unique symbol = Symbol("hubbub.compact");
export const kFlush: unique symbol = Symbol("hubbub.flush");
export const kFlushTick: unique symbol = Symbol("hubbub.flushTick");
export const kTeardown: unique symbol = Symbol("hubbub.teardown");
export const kTouch: unique symbol = Symbol("hubbub.touch");
export const kLastSeen: unique symbol = Symbol("hubbub.lastSeen");
export const kPing: unique symbol = Symbol("hubbub.ping");
export const kSetUser: unique symbol = Symbol("hubbub.setUser");
export const kRoomHas: unique symbol = Symbol("hubbub.roomHas");
export const kRoomCount: unique symbol = Symbol("hubbub.roomCount");
export const kRoomAdd: unique symbol = Symbol("hubbub.roomAdd");
export const kRoomDelete: unique symbol = Symbol("hubbub.roomDelete");
export const kRoomTake: unique symbol = Symbol("hubbub.roomTake");
