// Process.nextTick rescheduling itself forever.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const f = () => process.nextTick(f); f(); return new Promise(() => {})
}
