import type { Context } from '../context.js';

/** Room aliases, the public room directory and the user directory. */
export class DirectoryService {
  constructor(private readonly ctx: Context) {}
}
