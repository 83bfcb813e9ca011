// A busy loop in a timer callback.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return new Promise((resolve) => setTimeout(() => { while (true) {} }, 10))
}
