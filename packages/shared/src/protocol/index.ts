export * from './version.js'
export * from './framing.js'
export * from './messages.js'
export * from './head-checks.js'
