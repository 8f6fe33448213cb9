/**
 * @porchlight/shared/enrol: guided set-up. The one-line enrolment code that carries a relay's
 * URL, an agent token, the relay CA's fingerprint and optionally a client certificate from
 * `porchlight-relay agent add` to `porchlight login`, and the in-place edits of relay.yaml's
 * `agents:` section those commands make.
 */
export { certificateSha256, decodeEnrolmentCode, encodeEnrolmentCode, ENROL_PREFIX, formatFingerprint, type EnrolmentCode } from './code.js'
export { addAgentEntry, allowAgentEntry, removeAgentEntry, type AgentEntry, type AgentGrant } from './relay-yaml.js'
