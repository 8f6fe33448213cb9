/**
 * Protocol version spoken on the control stream. Rule: the relay accepts agents whose major
 * version equals its own; new optional message fields do not bump it, new required ones do.
 */
export const PROTOCOL_VERSION = 1
