// Buffers, which QuickJS does not count itself.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const keep = []; for (;;) keep.push(Buffer.alloc(1 << 20))
}
