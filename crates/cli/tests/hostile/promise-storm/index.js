// Every promise job queues two more, and the handler's promise never settles.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const f = () => { Promise.resolve().then(f); Promise.resolve().then(f) }; f(); return new Promise(() => {})
}
