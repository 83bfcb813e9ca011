// The same storm behind a handler that has already returned.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const f = () => { Promise.resolve().then(f); Promise.resolve().then(f) }; f(); return 'settled'
}
