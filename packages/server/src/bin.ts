#!/usr/bin/env node
import { Command, CommanderError } from 'commander'
import { formatForCli, PorchlightError } from '@porchlight/shared/errors'
import { runServe } from './commands/serve.js'
import { runCheck } from './commands/check.js'
import { runTokenNew } from './commands/token.js'
import { resolvePkiDir } from './commands/pki-dir.js'

// The ca and cert commands load node-forge (about 10 MB of RSS): imported only when run, so a
// serving relay never carries it.
const caCommands = () => import('./commands/ca.js')
const certCommands = () => import('./commands/cert.js')

/** argv -> commands/*. Usage errors exit 2; config and auth errors exit 1 with one line. */
const debug = process.argv.includes('--debug')
const print = (line: string): void => { process.stdout.write(`${line}\n`) }

const program = new Command('porchlight-relay')
  .description('Porchlight relay: publishes agents\' tunnels on this public server')
  .option('--debug', 'print stack traces on errors')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  .showHelpAfterError('(run with --help for usage)')

program.command('serve').description('run the relay')
  .requiredOption('-c, --config <file>', 'relay.yaml')
  .action(async (o: { config: string }) => { await runServe({ config: o.config, debug }) })

program.command('check').description('validate relay.yaml, print every problem, exit 0/1')
  .requiredOption('-c, --config <file>', 'relay.yaml')
  .action(async (o: { config: string }) => { process.exitCode = await runCheck({ config: o.config }, print) })

program.command('token').description('agent tokens')
  .command('new').argument('<name>', 'agent name').description('print a fresh agent token and its relay.yaml lines')
  .action((name: string) => { runTokenNew({ name }, print) })

const ca = program.command('ca').description('the relay\'s certificate authority')
ca.command('init').description('create the CA and the agents listener\'s server certificate')
  .option('--pki <dir>', 'PKI directory').option('-c, --config <file>', 'relay.yaml (its pki: key)')
  .option('--hostname <name>', 'server certificate hostname', 'localhost').option('--force', 'replace an existing CA')
  .action(async (o: { pki?: string; config?: string; hostname: string; force?: boolean }) => {
    const { runCaInit } = await caCommands()
    await runCaInit({ pki: await resolvePkiDir(o), hostname: o.hostname, force: o.force ?? false }, print)
  })

const cert = program.command('cert').description('agent client certificates')
cert.command('issue').argument('<name>', 'agent name').description('issue a PEM bundle (cert, key, CA) for an agent')
  .option('--days <n>', 'validity in days', '365').option('--out <file>', 'output file (default ./NAME.pem)')
  .option('--pki <dir>', 'PKI directory').option('-c, --config <file>', 'relay.yaml')
  .action(async (name: string, o: { days: string; out?: string; pki?: string; config?: string }) => {
    const days = Number(o.days)
    if (!Number.isInteger(days) || days < 1 || days > 3650) throw new PorchlightError('PL_ERR_USAGE', ['--days must be a whole number from 1 to 3650'])
    const { runCertIssue } = await certCommands()
    await runCertIssue({ pki: await resolvePkiDir(o), name, days, ...(o.out ? { out: o.out } : {}) }, print)
  })
cert.command('revoke').argument('<target>', 'agent name or certificate serial').description('revoke; a connected agent is cut off within 5 s')
  .option('--pki <dir>', 'PKI directory').option('-c, --config <file>', 'relay.yaml')
  .action(async (target: string, o: { pki?: string; config?: string }) => { const { runCertRevoke } = await certCommands(); await runCertRevoke({ pki: await resolvePkiDir(o), target }, print) })
cert.command('list').description('issued certificates').option('--pki <dir>', 'PKI directory').option('-c, --config <file>', 'relay.yaml')
  .action(async (o: { pki?: string; config?: string }) => { const { runCertList } = await certCommands(); await runCertList({ pki: await resolvePkiDir(o) }, print) })

// A promise chain, not top-level await: the single executable (scripts/sea.mjs) is a CommonJS bundle.
program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Help and version are not errors; everything else commander reports is bad usage.
    process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? 0 : 2
  } else {
    process.stderr.write(`${formatForCli(err, debug)}\n`)
    process.exitCode = err instanceof PorchlightError ? err.exit : 1
  }
})
