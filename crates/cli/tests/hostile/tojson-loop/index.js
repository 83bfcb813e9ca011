// A toJSON that loops while the result is serialised.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return { toJSON() { for (;;) {} } }
}
