// Parsing JSON nested a million levels.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return JSON.parse('['.repeat(1e6))
}
