// A result nested a million levels.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  let o = {}; for (let i = 0; i < 1e6; i++) o = { o }; return o
}
