// The kinds' own checks of the model (ResourceHandler.validate), in the shape of the datastore's
// problems, so the loader locates them (file:line, JSON path) and reports them like the schema's.
import type { Model } from '../datastore/model.js';
import type { DocumentProblem } from '../datastore/schema-validation.js';
import type { HandlerRegistry } from '../resources/contract.js';

/** Every problem the registered kinds find in `model`, in registry order. */
export function kindProblems(model: Model, handlers: HandlerRegistry): DocumentProblem[] {
  const problems: DocumentProblem[] = [];
  for (const handler of Object.values(handlers)) {
    for (const p of handler.validate?.(model) ?? []) {
      problems.push({ severity: p.severity, kind: p.document, path: [...p.path], message: p.message });
    }
  }
  return problems;
}
