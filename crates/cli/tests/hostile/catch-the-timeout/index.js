// Code that tries to catch the deadline.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  for (;;) { try { while (true) {} } catch (e) { } }
}
