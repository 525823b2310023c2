// Node module hooks for the test run: `.wgsl` files import as their text (as esbuild's text loader does).
import { register } from 'node:module';
register('./wgsl-loader.mjs', import.meta.url);
