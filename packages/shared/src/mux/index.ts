// Placeholder until the multiplexer lands (see MUX.md requirements).
export {}
