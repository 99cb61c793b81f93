/**
 * Emitter is a small typed event emitter. Listeners run synchronously in
 * the order they were added; one that throws does not stop the others (its
 * error is handed to onListenerError). There is no special "error" event:
 * an error nobody listens to is dropped.
 */
export class Emitter<Events extends { [K in keyof Events]: (...args: never[]) => unknown }> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {}

  /** on adds a listener and returns a function that removes it. */
  on<K extends keyof Events>(event: K, fn: Events[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** once adds a listener that is removed after its first call. */
  once<K extends keyof Events>(event: K, fn: Events[K]): () => void {
    const wrapped = ((...args: Parameters<Events[K]>) => {
      off();
      return (fn as (...a: Parameters<Events[K]>) => unknown)(...args);
    }) as unknown as Events[K];
    const off = this.on(event, wrapped);
    return off;
  }

  /** off removes a listener added with on. */
  off<K extends keyof Events>(event: K, fn: Events[K]): void {
    this.listeners.get(event)?.delete(fn);
  }

  /** listenerCount says how many listeners an event has. */
  listenerCount<K extends keyof Events>(event: K): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** listenersOf returns a snapshot of an event's listeners. */
  listenersOf<K extends keyof Events>(event: K): Events[K][] {
    return [...(this.listeners.get(event) ?? [])] as Events[K][];
  }

  /** emit calls every listener of event with args. */
  emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    for (const fn of this.listenersOf(event)) {
      try {
        (fn as (...a: Parameters<Events[K]>) => unknown)(...args);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
