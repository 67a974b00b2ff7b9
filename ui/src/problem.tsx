import { explain } from './api.js';

/** An error in words: no token, a role that may not, or anything else. */
export function Problem({ error }: { error: unknown }) {
  const { kind, text } = explain(error);
  return (
    <p class={`problem problem-${kind}`} role="alert">
      {text}
    </p>
  );
}
