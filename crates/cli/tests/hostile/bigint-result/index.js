// A result JSON cannot carry.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return 10n
}
