export * from './version.js'
export * from './framing.js'
export * from './messages.js'
