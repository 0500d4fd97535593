// The root layout a Next.js app router needs.
export const metadata = { title: "bedside in a Next.js app" };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
