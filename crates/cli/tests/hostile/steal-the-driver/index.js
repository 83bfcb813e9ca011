// Call sites that would hand function code the engine's own functions; any it
// reaches are called with made-up arguments. The result counts them: none.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  Error.prepareStackTrace = (e, frames) => frames.map((site) => site.getFunction())
  const functions = new Error().stack
  Error.prepareStackTrace = undefined
  const engine = functions.filter((f) => typeof f === 'function' && f !== exports.main)
  for (const f of engine) {
    try { f({}, 'stolen', 0) } catch (e) { }
  }
  return engine.length
}
