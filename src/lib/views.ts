// Where the templates are: views/ at the root of the project, reached from
// src/lib/ under tsx and from dist/lib/ after a build alike.
import { fileURLToPath } from 'node:url'

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url))
