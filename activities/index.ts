export * from './curation';
