'use strict'
// A plain aedes broker for the tests (tests/brokers/servers/aedes.py):
//   node aedes_broker.js PORT NODE_MODULES_DIR
// In-memory persistence (aedes-persistence, the default); retained messages and wills work in it.
// SIGTERM closes every client and exits 0.
const net = require('node:net')
const path = require('node:path')
const { pathToFileURL } = require('node:url')

async function main () {
  const [port, modules] = process.argv.slice(2)
  const entry = pathToFileURL(path.join(modules, 'aedes', 'aedes.js')).href
  const { Aedes } = await import(entry)
  const broker = await Aedes.createBroker()
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    broker.handle(socket)
  })
  server.listen(Number(port), '127.0.0.1', () => {
    console.log(`aedes ${broker.version} listening on 127.0.0.1:${port}`)
  })
  const stop = () => {
    server.close()
    broker.close(() => process.exit(0))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
