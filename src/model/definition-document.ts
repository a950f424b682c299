import { parseAllDocuments } from 'yaml'
import { type Definition, parseDefinition } from './definition.ts'
import { ValidationError } from './errors.ts'

/**
 * Reads definitions from a file's text (`p2p-registry definitions save FILE`). The format follows the
 * extension, unless `format` says: YAML (`.yaml`/`.yml`, several definitions separated by `---`) or
 * JSON (`.json`); standard input is read as YAML, which JSON is a subset of. Each
 * document may be a definition, an array of definitions, or the API's `{"definition": {...}}` body.
 * One definition is reported as `definition.…`, several as `definitions[i].…`.
 */
export function parseDefinitionsDocument(
  text: string,
  fileName: string,
  format: 'yaml' | 'json' | 'by-extension' = 'by-extension',
): Definition[] {
  const extension = format === 'by-extension' ? /\.([^./\\]+)$/.exec(fileName)?.[1]?.toLowerCase() : format
  let documents: unknown[]
  if (extension === 'yaml' || extension === 'yml') documents = readYaml(text, fileName)
  else if (extension === 'json') documents = [readJson(text, fileName)]
  else throw new ValidationError(`${fileName}: unsupported file type, use .yaml, .yml or .json`, fileName)

  const values = documents.flatMap((doc) => (Array.isArray(doc) ? doc : [unwrap(doc, fileName)]))
  if (values.length === 0) throw new ValidationError(`${fileName} contains no definitions`, fileName)
  if (values.length === 1) return [parseDefinition(values[0])]
  return values.map((value, i) => parseDefinition(value, `definitions[${i}]`))
}

/** `{"definition": {...}}` (the save request body) → the definition inside. */
function unwrap(doc: unknown, fileName: string): unknown {
  if (doc !== null && typeof doc === 'object' && Object.hasOwn(doc, 'definition')) {
    const extra = Object.keys(doc).find((k) => k !== 'definition')
    if (extra !== undefined) {
      throw new ValidationError(`${fileName} has unknown field "${extra}" next to "definition"`, extra)
    }
    return (doc as { definition: unknown }).definition
  }
  return doc
}

function readYaml(text: string, fileName: string): unknown[] {
  const out: unknown[] = []
  for (const doc of parseAllDocuments(text)) {
    const error = doc.errors[0]
    // The yaml library's message names line and column, then adds a code frame we leave out.
    if (error !== undefined) {
      throw syntaxError(fileName, 'YAML', error.message.split('\n')[0]!.replace(/:$/, ''))
    }
    let value: unknown
    try {
      value = doc.toJS()
    } catch (e) {
      throw syntaxError(fileName, 'YAML', (e as Error).message) // unresolved alias, alias bomb, …
    }
    if (value !== null && value !== undefined) out.push(value) // skip empty documents (trailing `---`)
  }
  return out
}

function readJson(text: string, fileName: string): unknown {
  try {
    return JSON.parse(text)
  } catch (e) {
    throw syntaxError(fileName, 'JSON', (e as Error).message) // V8 names position, line and column
  }
}

function syntaxError(fileName: string, format: string, reason: string): ValidationError {
  return new ValidationError(`${fileName}: invalid ${format}: ${reason}`, fileName)
}
