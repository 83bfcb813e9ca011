// A plain busy loop.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  while (true) {}
}
