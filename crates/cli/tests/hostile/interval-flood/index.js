// A hundred thousand intervals.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  for (let i = 0; i < 100000; i++) setInterval(() => {}, 0); return new Promise(() => {})
}
