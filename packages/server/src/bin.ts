#!/usr/bin/env node
// First: sets V8's young-generation growth before any other module allocates (see heap.ts).
import '@porchlight/shared/heap'
import { Command, CommanderError } from 'commander'
import { formatForCli, PorchlightError } from '@porchlight/shared/errors'
import { resolveRelayConfig } from './commands/relay-config.js'
import { RELAY_VERSION } from './commands/version.js'

// The bundles are minified: with --debug, stack traces go through their source maps to the .ts lines
// (before any command's module loads; costs nothing otherwise).
if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true)

// Every command's module is imported when it runs. The ca, cert, init and agent commands load
// node-forge or the yaml editor (about 10 MB of RSS), so a serving relay never carries them; and
// `serve`'s own graph loads after heap.ts has run: ESM parses a static import graph before it
// runs any of it, and parsing the relay's grew V8's young generation to 8 MiB (6 MiB of RSS).
const caCommands = () => import('./commands/ca.js')
const certCommands = () => import('./commands/cert.js')
const agentCommands = () => import('./commands/agent.js')
/** --pki, else the config's pki:, else ./pki (reading the config loads the config schemas). */
const resolvePkiDir = async (o: { pki?: string; config?: string }): Promise<string> => (await import('./commands/pki-dir.js')).resolvePkiDir(o)

/** argv -> commands/*. Usage errors exit 2; config and auth errors exit 1 with one line. */
const debug = process.argv.includes('--debug')
const print = (line: string): void => { process.stdout.write(`${line}\n`) }
const io = { out: print, err: (line: string): void => { process.stderr.write(`${line}\n`) } }
const CONFIG_HELP = 'relay.yaml (default: PORCHLIGHT_RELAY_CONFIG, ./relay.yaml, /etc/porchlight/relay.yaml)'
/** `--hosts a,b --hosts c` -> [a, b, c]. */
const commaList = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), ...value.split(',').map((v) => v.trim()).filter((v) => v !== '')]

const program = new Command('porchlight-relay')
  .description('Porchlight relay: publishes agents\' tunnels on this public server')
  .version(RELAY_VERSION, '-V, --version')
  .option('--debug', 'print stack traces on errors')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  .showHelpAfterError('(run with --help for usage)')

program.command('init').description('set up a relay: relay.yaml, CA, agents\' certificate, admin token; prints DNS records and the next step')
  .requiredOption('--domain <name>', 'public DNS name (tunnels become NAME.<domain>)')
  .option('--dir <dir>', 'where relay.yaml goes (default /etc/porchlight)')
  .option('--data <dir>', 'where pki/ and state/ go (default /var/lib/porchlight, or --dir when given)')
  .option('--listen-public <addr>', 'visitors\' HTTP listener (default 0.0.0.0:80)')
  .option('--listen-agents <addr>', 'agents\' listener (default 0.0.0.0:7443)')
  .option('--listen-admin <addr>', 'admin API listener (default 127.0.0.1:7070)')
  .option('--user <name>', 'as root: the user the relay runs as, who gets the data files (default porchlight if it exists)')
  .option('--acme-email <email>', 'HTTPS on 443 with certificates from an ACME CA (Let\'s Encrypt); http:// redirects to https://')
  .option('--acme-directory <url>', 'with --acme-email: the CA\'s ACME directory (default Let\'s Encrypt; e.g. its staging CA)')
  .option('--agents-shared', 'with --acme-email: agents connect on 443 too (listen.agents: shared)')
  .action(async (o: { domain: string; dir?: string; data?: string; listenPublic?: string; listenAgents?: string; listenAdmin?: string; user?: string; acmeEmail?: string; acmeDirectory?: string; agentsShared?: boolean }) => {
    const { runInit } = await import('./commands/init.js')
    await runInit(o, print)
  })

program.command('serve').description('run the relay')
  .option('-c, --config <file>', CONFIG_HELP)
  .action(async (o: { config?: string }) => {
    const { runServe } = await import('./commands/serve.js')
    await runServe({ config: await resolveRelayConfig(o.config), debug })
  })

program.command('check').description('validate relay.yaml, print every problem, exit 0/1')
  .option('-c, --config <file>', CONFIG_HELP)
  .action(async (o: { config?: string }) => {
    const { runCheck } = await import('./commands/check.js')
    process.exitCode = await runCheck({ config: await resolveRelayConfig(o.config) }, print)
  })

program.command('token').description('agent tokens')
  .command('new').argument('<name>', 'agent name').description('print a fresh agent token and its relay.yaml lines')
  .action(async (name: string) => { const { runTokenNew } = await import('./commands/token.js'); runTokenNew({ name }, print) })

const agent = program.command('agent').description('agents in relay.yaml: add (prints the laptop\'s login line), list, remove, allow')
const grantOptions = (cmd: Command): Command => cmd
  .option('--hosts <list>', 'hostnames or "*.domain" patterns it may publish, comma-separated', commaList)
  .option('--tcp-ports <list>', 'relay ports or "from-to" ranges it may listen on', commaList)
  .option('--outbound <list>', 'HOST:PORT destinations its forwards may reach', commaList)
  .option('-c, --config <file>', CONFIG_HELP)
grantOptions(agent.command('add').argument('<name>', 'agent name (lowercase letters, digits, - or _)')
  .description('add an agent with a fresh token, reload the relay, print `porchlight login <code>` for it'))
  .option('--cert', 'also issue a client certificate (in the code) and require it')
  .option('--days <n>', 'validity of that certificate in days', '365')
  .option('--relay-url <url>', 'URL agents dial, if not wss://<domain>:<agents port>')
  .action(async (name: string, o: { hosts?: string[]; tcpPorts?: string[]; outbound?: string[]; cert?: boolean; days: string; relayUrl?: string; config?: string }) => {
    const days = Number(o.days)
    if (!Number.isInteger(days) || days < 1 || days > 3650) throw new PorchlightError('PL_ERR_USAGE', ['--days must be a whole number from 1 to 3650'])
    const { runAgentAdd } = await agentCommands()
    await runAgentAdd({ ...o, name, days, config: await resolveRelayConfig(o.config) }, io)
  })
agent.command('list').description('agents in relay.yaml and what each may claim').option('-c, --config <file>', CONFIG_HELP)
  .action(async (o: { config?: string }) => { const { runAgentList } = await agentCommands(); await runAgentList({ config: await resolveRelayConfig(o.config) }, io) })
agent.command('remove').argument('<name>', 'agent name').description('remove an agent (token and certificates stop working) and reload the relay')
  .option('-c, --config <file>', CONFIG_HELP)
  .action(async (name: string, o: { config?: string }) => { const { runAgentRemove } = await agentCommands(); await runAgentRemove({ name, config: await resolveRelayConfig(o.config) }, io) })
grantOptions(agent.command('allow').argument('<name>', 'agent name').description('let an agent claim more hosts, ports or destinations, and reload the relay'))
  .action(async (name: string, o: { hosts?: string[]; tcpPorts?: string[]; outbound?: string[]; config?: string }) => {
    const { runAgentAllow } = await agentCommands()
    await runAgentAllow({ ...o, name, config: await resolveRelayConfig(o.config) }, io)
  })

const ca = program.command('ca').description('the relay\'s certificate authority')
ca.command('init').description('create the CA and the agents listener\'s server certificate')
  .option('--pki <dir>', 'PKI directory').option('-c, --config <file>', 'relay.yaml (its pki: key)')
  .option('--hostname <name>', 'server certificate hostname', 'localhost').option('--force', 'replace an existing CA')
  .action(async (o: { pki?: string; config?: string; hostname: string; force?: boolean }) => {
    const { runCaInit } = await caCommands()
    await runCaInit({ pki: await resolvePkiDir(o), hostname: o.hostname, force: o.force ?? false }, print)
  })

const PKI_HELP = 'PKI directory (default: pki: of relay.yaml, see -c; else ./pki)'
const cert = program.command('cert').description('client certificates for agents and visitors')
cert.command('issue').argument('<name>', 'agent name (or, with --visitor, a name for the visitor)').description('issue a PEM bundle (cert, key, CA) for an agent, or with --visitor for a visitor of client_certs sites')
  .option('--days <n>', 'validity in days', '365').option('--out <file>', 'output file (default ./NAME.pem)')
  .option('--visitor', 'a visitor certificate: opens sites with access.client_certs, never authenticates an agent')
  .option('--pki <dir>', PKI_HELP).option('-c, --config <file>', CONFIG_HELP)
  .action(async (name: string, o: { days: string; out?: string; visitor?: boolean; pki?: string; config?: string }) => {
    const days = Number(o.days)
    if (!Number.isInteger(days) || days < 1 || days > 3650) throw new PorchlightError('PL_ERR_USAGE', ['--days must be a whole number from 1 to 3650'])
    const { runCertIssue } = await certCommands()
    await runCertIssue({ pki: await resolvePkiDir(o), name, days, kind: o.visitor ? 'visitor' : 'agent', ...(o.out ? { out: o.out } : {}) }, print)
  })
cert.command('revoke').argument('<target>', 'agent name or certificate serial').description('revoke; a connected agent is cut off within 5 s')
  .option('--pki <dir>', PKI_HELP).option('-c, --config <file>', CONFIG_HELP)
  .action(async (target: string, o: { pki?: string; config?: string }) => { const { runCertRevoke } = await certCommands(); await runCertRevoke({ pki: await resolvePkiDir(o), target }, print) })
cert.command('list').description('issued certificates').option('--pki <dir>', PKI_HELP).option('-c, --config <file>', CONFIG_HELP)
  .action(async (o: { pki?: string; config?: string }) => { const { runCertList } = await certCommands(); await runCertList({ pki: await resolvePkiDir(o) }, print) })

// A promise chain, not top-level await: the single executable (scripts/sea.mjs) is a CommonJS
// bundle, and esbuild cannot bundle top-level await into CommonJS (test/install/sea.test.ts).
program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Help and version are not errors; everything else commander reports is bad usage.
    process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? 0 : 2
  } else {
    process.stderr.write(`${formatForCli(err, debug)}\n`)
    process.exitCode = err instanceof PorchlightError ? err.exit : 1
  }
})
