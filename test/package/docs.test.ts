// Every public name has a doc comment (the project's TSDoc rule): each
// symbol exported by the two entry points (`quorumkv` and
// `quorumkv/testing`), and each public member of an exported class or
// interface, its inherited members declared in this repository included.
// Left out: private and protected members, `#private` ones, constructors,
// and members tagged `@internal`. A member that overrides or implements a
// documented one counts as documented when TypeScript shows that doc for it
// (as editors do). The check reads the sources with the TypeScript compiler
// API, without type-checking them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { strictCompilerOptions } from './ts-options.js';

const ROOT = resolve('.');
const SRC = resolve(ROOT, 'src') + sep;
const ENTRIES = ['src/index.ts', 'src/testing/index.ts'];

/** Where a declaration is, as `path:line` relative to the repository. */
function where(decl: ts.Declaration): string {
  const sf = decl.getSourceFile();
  return `${relative(ROOT, sf.fileName)}:${sf.getLineAndCharacterOfPosition(decl.getStart()).line + 1}`;
}

function isInternal(decl: ts.Declaration): boolean {
  return ts.getJSDocTags(decl).some((t) => t.tagName.text === 'internal');
}

function isHidden(decl: ts.Declaration): boolean {
  if (ts.isConstructorDeclaration(decl) || ts.isConstructSignatureDeclaration(decl)) return true;
  const name = (decl as { name?: ts.Node }).name;
  if (name !== undefined && ts.isPrivateIdentifier(name)) return true;
  const flags = ts.getCombinedModifierFlags(decl);
  return (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !== 0;
}

/** Lists the undocumented exports and public members of the entry points. */
function undocumented(): { missing: string[]; checked: number } {
  const program = ts.createProgram(
    ENTRIES.map((e) => resolve(ROOT, e)),
    strictCompilerOptions(),
  );
  const checker = program.getTypeChecker();
  const documented = (sym: ts.Symbol): boolean =>
    ts.displayPartsToString(sym.getDocumentationComment(checker)).trim() !== '' || sym.getJsDocTags(checker).length > 0;
  const missing: string[] = [];
  const seenSymbols = new Set<ts.Symbol>();
  const seenMembers = new Set<ts.Declaration>();
  let checked = 0;

  const checkMember = (owner: string, m: ts.Symbol): void => {
    const decls = (m.declarations ?? []).filter((d) => d.getSourceFile().fileName.startsWith(SRC));
    // members of the platform and of dependencies (EventEmitter's, AsyncIterable's) are theirs to document
    if (decls.length === 0 || m.name === 'prototype') return;
    if (decls.some((d) => isHidden(d) || isInternal(d))) return;
    if (decls.some((d) => seenMembers.has(d))) return;
    for (const d of decls) seenMembers.add(d);
    checked++;
    if (!documented(m)) missing.push(`${owner}.${checker.symbolToString(m)} (${where(decls[0]!)})`);
  };

  for (const entry of ENTRIES) {
    const sf = program.getSourceFile(resolve(ROOT, entry));
    assert.ok(sf, `${entry} is not in the program`);
    const mod = checker.getSymbolAtLocation(sf);
    assert.ok(mod, `${entry} is not a module`);
    for (const exported of checker.getExportsOfModule(mod)) {
      const sym = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      if (seenSymbols.has(sym)) continue;
      seenSymbols.add(sym);
      const decl = sym.declarations?.[0];
      assert.ok(decl, `${entry}: ${exported.name} has no declaration`);
      checked++;
      if (!documented(sym)) missing.push(`${exported.name} (${where(decl)})`);
      if (sym.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface)) {
        // instance members, inherited ones included
        for (const m of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(sym))) checkMember(exported.name, m);
      }
      if (sym.flags & ts.SymbolFlags.Class) {
        // static members
        for (const m of checker.getPropertiesOfType(checker.getTypeOfSymbol(sym))) checkMember(exported.name, m);
      }
    }
  }
  return { missing, checked };
}

test('every export of quorumkv and quorumkv/testing, and every public member of their classes and interfaces, has a doc comment', () => {
  const { missing, checked } = undocumented();
  assert.ok(checked > 1000, `only ${checked} names were checked: the entry points were not read`);
  assert.deepEqual(missing, [], `${missing.length} of ${checked} public names have no doc comment:\n  ${missing.join('\n  ')}`);
});
