// A thrown null.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  throw null
}
