// QueueMicrotask instead of promises.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const f = () => { queueMicrotask(f); queueMicrotask(f) }; f(); return new Promise(() => {})
}
