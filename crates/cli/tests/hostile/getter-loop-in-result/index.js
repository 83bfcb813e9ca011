// A getter that loops while the result is serialised.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return { get x() { for (;;) {} } }
}
