/**
 * `describe` on its own, until src/cli/main.ts registers addDescribeCommand (then `sketchgpu describe` does the
 * same): node --import tsx src/cli/describe-main.ts describe --help. Errors print as main.ts prints them.
 */
import { Command } from 'commander';
import { isSketchError } from '../errors.ts';
import { addDescribeCommand } from './describe.ts';

export async function describeMain(argv: string[]): Promise<number> {
  const program = new Command('sketchgpu').showHelpAfterError('(run with --help for usage)');
  addDescribeCommand(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (isSketchError(e)) {
      console.error(`error: ${e.message}`);
      if (e.hint) console.error(`hint: ${e.hint}`);
    } else {
      console.error(`error: ${(e as Error)?.message ?? String(e)}`);
      console.error('hint: this is unexpected; rerun with SKETCHGPU_DEBUG=1 for details and report it.');
    }
    if (process.env.SKETCHGPU_DEBUG) console.error(e);
    return isSketchError(e) ? 2 : 1;
  }
}

process.exitCode = await describeMain(process.argv);
