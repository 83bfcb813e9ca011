// A loop that a finally block would continue.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  try { while (true) {} } finally { while (true) {} }
}
