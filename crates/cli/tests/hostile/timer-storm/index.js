// Every timer starts two more.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const tick = () => { setTimeout(tick, 0); setTimeout(tick, 0) }; tick(); return new Promise(() => {})
}
