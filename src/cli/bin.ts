#!/usr/bin/env -S node --max-semi-space-size=2
import { main } from './main.ts'

process.exitCode = await main(process.argv)
