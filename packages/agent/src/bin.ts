#!/usr/bin/env node
// First: sets V8's young-generation growth before any other module allocates (see heap.ts).
import '@porchlight/shared/heap'
import { Command, CommanderError, Option } from 'commander'
import type { Logger } from '@porchlight/shared/log'
import { exitCodeOf, processIo, reportError } from './cli-io.js'
import { AGENT_VERSION } from './version.js'
import type { LogFormat } from './logger.js'
import type { LogTail } from './terminal-view.js'

// The bundles are minified: with --debug, stack traces go through their source maps to the .ts lines
// (before any command's module loads; costs nothing otherwise).
if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true)

// Command modules are imported when their command runs: `--help`, usage errors and `status`
// stay fast because they never load ws, the mux or the PKI code.

/**
 * `porchlight`: argv -> commands/*. Usage errors exit 2, config/auth errors exit 1 with one
 * `CODE: message` line on stderr (stack only with --debug). The only place that exits.
 */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0
  const program = new Command('porchlight')
  // Before any subcommand is added, so they all inherit it: commander throws instead of exiting.
  program.exitOverride()
  program
    .description('Porchlight agent: publish local sites and ports through your own relay, and forward ports out through it')
    .version(AGENT_VERSION, '-V, --version')
    .option('--debug', 'debug-level logs and stack traces on errors')
    .addOption(new Option('--log <format>', 'log format: auto (a live screen on a terminal, else JSON on stderr), json, pretty').choices(['auto', 'json', 'pretty']).default('auto'))
    .showHelpAfterError('(run with --help for usage)')
  const debug = (): boolean => program.opts<{ debug?: boolean }>().debug === true
  const logFormat = (): LogFormat => program.opts<{ log?: LogFormat }>().log ?? 'auto'
  const log = async (): Promise<Logger> => (await import('./logger.js')).buildAgentLogger({ debug: debug(), format: logFormat() })
  /** `up` and `http` on a terminal: the live screen, with the logs' warnings shown in it. */
  const screen = async (): Promise<{ log: Logger; view: { out: NodeJS.WriteStream; tail: LogTail } | undefined }> => {
    const { buildAgentLogger, wantsTerminalView } = await import('./logger.js')
    if (!wantsTerminalView(logFormat())) return { log: await log(), view: undefined }
    const { LogTail } = await import('./terminal-view.js')
    const tail = new LogTail()
    return { log: buildAgentLogger({ debug: debug(), tail }), view: { out: process.stdout, tail } }
  }

  const quickOptions = (cmd: Command): Command =>
    cmd
      .option('--relay <url>', 'relay URL (else PORCHLIGHT_RELAY, else the config file)')
      .option('--token <token>', 'agent token (else PORCHLIGHT_TOKEN, else the config file); prefer the env var: flags show up in ps')
      .option('--cert <file>', 'client certificate bundle (else `cert:` of the config file)')
      .option('-c, --config <file>', 'config file for relay settings (default: PORCHLIGHT_CONFIG or ~/.config/porchlight/agent.yaml)')

  program
    .command('up')
    .description('run the agent with every tunnel in its config (SIGHUP reloads, SIGTERM drains)')
    .option('-c, --config <file>', 'agent config (default: PORCHLIGHT_CONFIG or ~/.config/porchlight/agent.yaml)')
    .action(async (opts: { config?: string }) => {
      const { runUp } = await import('./commands/up.js')
      const { log: logger, view } = await screen()
      exitCode = await runUp({ config: opts.config, debug: debug(), ...(view !== undefined ? { view } : {}) }, logger, processIo)
    })

  quickOptions(
    program
      .command('http')
      .description('share a local web server; prints the public URL')
      .argument('<target>', 'local PORT, HOST:PORT or http(s):// URL')
      .option('--name <name>', 'public name (a label like "blog" or a full hostname); default: random')
      .option('--host-header <host>', 'Host header the local server expects (name-based virtual hosts)')
      .option('--basic-auth <user:pass>', 'visitors must log in with this user and password (hashed here; same as access.basic)')
      .option('--allow-ip <cidr>', 'only visitors from this address or CIDR get in (repeatable; same as access.allow_ips)', (v: string, prev: string[] = []) => [...prev, v])
      .option('--link', 'visitors need a share link (access.links); prints one at once')
      .option('--expires <duration>', 'lifetime of the printed share link, e.g. 2h, 7d (with --link; default 24h)'),
  ).action(async (target: string, opts: { name?: string; hostHeader?: string; basicAuth?: string; allowIp?: string[]; link?: boolean; expires?: string; relay?: string; token?: string; cert?: string; config?: string }) => {
    const { runHttp } = await import('./commands/http.js')
    const { log: logger, view } = await screen()
    exitCode = await runHttp(target, { ...opts, debug: debug() }, logger, processIo, view)
  })

  quickOptions(
    program
      .command('tcp')
      .description('expose a local TCP port on a relay port')
      .argument('<port>', 'local PORT or HOST:PORT')
      .option('--remote-port <port>', 'relay port to listen on (default: the relay picks one)'),
  ).action(async (port: string, opts: { remotePort?: string; relay?: string; token?: string; cert?: string; config?: string }) => {
    const { runTcp } = await import('./commands/tcp.js')
    exitCode = await runTcp(port, { ...opts, debug: debug() }, await log(), processIo)
  })

  quickOptions(
    program
      .command('forward')
      .description('outbound: listen on a local port; the relay dials HOST:PORT (if its policy allows)')
      .argument('<localport>', 'local PORT (on 127.0.0.1) or HOST:PORT to listen on')
      .argument('<destination>', 'HOST:PORT the relay connects to'),
  ).action(async (local: string, destination: string, opts: { relay?: string; token?: string; cert?: string; config?: string }) => {
    const { runForward } = await import('./commands/forward.js')
    exitCode = await runForward(local, destination, { ...opts, debug: debug() }, await log(), processIo)
  })

  program
    .command('login')
    .description('join a relay: the code from `porchlight-relay agent add` becomes ~/.config/porchlight/agent.yaml; checks the link')
    .argument('<code>', 'enrolment code (pl1_…)')
    .option('-c, --config <file>', 'where to write agent.yaml (default: PORCHLIGHT_CONFIG or ~/.config/porchlight/agent.yaml)')
    .option('--force', 'replace an existing agent.yaml')
    .action(async (code: string, opts: { config?: string; force?: boolean }) => {
      const { runLogin } = await import('./commands/login.js')
      exitCode = await runLogin(code, opts, await log(), processIo)
    })

  program
    .command('check')
    .description('validate agent.yaml (and the certificate files it names), print every problem, exit 0/1')
    .option('-c, --config <file>', 'agent config (default: PORCHLIGHT_CONFIG or ~/.config/porchlight/agent.yaml)')
    .action(async (opts: { config?: string }) => {
      const { runAgentCheck } = await import('./commands/check.js')
      exitCode = await runAgentCheck(opts, processIo)
    })

  program
    .command('status')
    .description("show what the running agent is doing (asks its status API)")
    .option('-c, --config <file>', 'read the status API address (`inspect`) from this config')
    .option('--json', 'print the raw JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const { runStatus } = await import('./commands/status.js')
      exitCode = await runStatus(opts, processIo)
    })

  const link = program.command('link').description('share links for tunnels with `access.links: true`')
  link
    .command('create')
    .description('create a share link; prints its URL')
    .argument('<hostname>', 'published hostname (or tunnel name)')
    .option('--expires <duration>', 'lifetime, e.g. 30m, 24h, 7d', '24h')
    .option('--note <text>', 'note shown in link list')
    .option('-c, --config <file>', 'read the status API address (`inspect`) from this config')
    .option('--json', 'print the raw JSON')
    .action(async (host: string, opts: { expires?: string; note?: string; config?: string; json?: boolean }) => {
      const { runLinkCreate } = await import('./commands/link.js')
      exitCode = await runLinkCreate(host, opts, processIo)
    })
  link
    .command('list')
    .description("list this agent's share links")
    .option('-c, --config <file>', 'read the status API address (`inspect`) from this config')
    .option('--json', 'print the raw JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const { runLinkList } = await import('./commands/link.js')
      exitCode = await runLinkList(opts, processIo)
    })
  link
    .command('revoke')
    .description('revoke a share link at once')
    .argument('<id>', 'link id (see link list)')
    .option('-c, --config <file>', 'read the status API address (`inspect`) from this config')
    .action(async (id: string, opts: { config?: string }) => {
      const { runLinkRevoke } = await import('./commands/link.js')
      exitCode = await runLinkRevoke(id, opts, processIo)
    })

  program
    .command('hash-password')
    .description('print an scrypt hash for access.basic.password_hash')
    .option('--password-stdin', 'read the password from stdin instead of prompting')
    .action(async (opts: { passwordStdin?: boolean }) => {
      const { runHashPassword } = await import('./commands/hash-password.js')
      const { promptHidden, readStdin } = await import('./commands/prompt.js')
      await runHashPassword({ passwordStdin: opts.passwordStdin === true }, { readStdin: () => readStdin(), print: (line) => processIo.out(line), prompt: promptHidden })
      exitCode = 0
    })

  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are successes; everything else commander reports is bad usage.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2
    }
    reportError(processIo, err, debug())
    return exitCodeOf(err)
  }
  return exitCode
}

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    reportError(processIo, err, process.argv.includes('--debug'))
    process.exit(1)
  },
)
