/**
 * LRUSet remembers the most recently added or touched keys, up to a
 * capacity; the least recently used one goes first. A Map keeps insertion
 * order, which is all an LRU needs.
 */
export class LRUSet {
  private readonly keys = new Map<string, true>();

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError("LRUSet capacity must be at least 1");
  }

  /** has says whether key is remembered, and marks it as recently used. */
  has(key: string): boolean {
    if (!this.keys.has(key)) return false;
    this.keys.delete(key);
    this.keys.set(key, true);
    return true;
  }

  /** add remembers key, forgetting the least recently used key when full. */
  add(key: string): void {
    this.keys.delete(key);
    this.keys.set(key, true);
    while (this.keys.size > this.capacity) {
      const oldest = this.keys.keys().next();
      if (oldest.done) break;
      this.keys.delete(oldest.value);
    }
  }

  get size(): number {
    return this.keys.size;
  }
}
