// A proxy whose trap loops while the result is serialised.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return new Proxy({}, { ownKeys() { for (;;) {} } })
}
