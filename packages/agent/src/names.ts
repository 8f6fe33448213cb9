/** Quick-share names come from the shared generator, the same one the relay draws from. */
export { randomTunnelName } from '@porchlight/shared/config'
