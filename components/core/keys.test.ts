import { keysOf } from "./keys";

interface Args {
  readonly a: string;
  readonly b?: number;
}

test("keysOf lists the keys in the order written", () => {
  expect(keysOf<Args>()({ b: true, a: true })).toEqual(["b", "a"]);
});

// What the compiler refuses (npm run typecheck enforces these; jest only transpiles)
export const typeChecks = () => [
  // @ts-expect-error a key of Args is missing
  keysOf<Args>()({ a: true }),
  // @ts-expect-error a key Args does not have
  keysOf<Args>()({ a: true, b: true, c: true }),
];
