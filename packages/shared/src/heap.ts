import { setFlagsFromString } from 'node:v8'

/**
 * Imported first by both binaries, before anything else allocates: keeps V8's young generation at
 * its initial 1 MiB semi-space instead of letting it double up to 16 MiB.
 *
 * Why: a grown young generation is ~32 MiB of RSS that never shrinks (startup alone grows it), and
 * a bulk stream's garbage is mostly 64 KiB socket-read Buffers whose JS objects are tiny, so with
 * 16 MiB semi-spaces a scavenge comes only after GiBs of data and the dead buffers pile up until
 * V8's 64 MiB external-memory limit forces a GC. With 1 MiB they are freed every few MiB. The
 * relay and agent keep little alive per request, so scavenges stay short (CPU per GiB measured
 * equal or lower; docs/operations.md, Memory).
 *
 * `--max-semi-space-size` would say the same but only works on the command line; the growth
 * factor is read each time V8 considers growing, so setting it at runtime takes effect.
 */
setFlagsFromString('--semi-space-growth-factor=1')
