/**
 * The base of every error a user can cause and fix: a bad manifest, a missing model, a corrupt file, an infeasible
 * budget. The CLI prints its message as one line and exits non-zero, without a stack trace; any other error is a
 * bug and keeps its stack. Messages name the file, the field or the tensor, what was expected and what was found.
 */
export class RazorkvError extends Error {
  override readonly name: string = "RazorkvError";
}
