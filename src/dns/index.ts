export { DnsAnswers, type DnsAnswersInit, type DnsSource } from './answers.ts'
export { dnsMetrics } from './metrics.ts'
export { isDomain, parseName } from './names.ts'
export { DnsServer, type DnsServerInit } from './server.ts'
