// A thrown object whose message getter loops.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  throw { get message() { for (;;) {} } }
}
