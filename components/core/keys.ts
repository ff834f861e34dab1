/**
 * The keys of an args interface, as data the compiler checks: `keysOf<T>()({ a: true, ... })`
 * must name every key of `T` and nothing else, so a field added to the interface and not to
 * its list of known keys (or the other way round) fails `npm run typecheck`, not a user's
 * `pulumi up`. Order is kept: it is the order errors list the known keys in.
 */
export function keysOf<T>() {
  return <const R extends { readonly [K in keyof Required<T>]: true }>(
    record: R & Record<Exclude<keyof R, keyof T>, never>,
  ): readonly (keyof T & string)[] => Object.keys(record) as (keyof T & string)[];
}
