/**
 * Who receives an emit, as the protocol layer describes it: rooms, users and
 * clients by id, minus exceptions. Structural, so the contract's typed emitter
 * and the hub share it without the protocol layer knowing the hub.
 *
 * @module
 */

/**
 * Who receives an emit. Fields are unioned (deduplicated); `except` removes.
 * An empty target (`{}`) or no target at all means everyone.
 */
export interface Target {
  /** One room or several. */
  rooms?: string | Iterable<string>;
  /** One user id or several: every connection of each user. */
  users?: string | Iterable<string>;
  /** One client id or several. */
  clients?: string | Iterable<string>;
  /** Client ids (or anything with an `id`, like a hub `Connection`) to skip, e.g. the sender. */
  except?: string | { readonly id: string } | Iterable<string | { readonly id: string }>;
}
