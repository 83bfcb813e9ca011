// A result that refers to itself.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const a = {}; a.self = a; return a
}
