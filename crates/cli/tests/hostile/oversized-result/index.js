// A result past the server's limit.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return 'x'.repeat(7 * 1024 * 1024)
}
